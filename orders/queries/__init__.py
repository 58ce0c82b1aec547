"""Read models for the pages, the API and voice: they read and never write."""
