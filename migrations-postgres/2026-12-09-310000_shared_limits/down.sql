DROP TABLE inbound_rate_windows;
