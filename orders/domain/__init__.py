"""Pure rules and decisions about money, stock, devices and orders: no I/O, no SQLAlchemy."""
