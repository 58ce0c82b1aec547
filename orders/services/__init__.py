"""The use cases a channel calls: where a press, a spoken yes or a form becomes an order."""
