"""Reports from the database: interval stats, text/CSV tables, PNG charts."""
