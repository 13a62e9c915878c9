"""The secpath daemon: the one place that owns I/O (sockets, TUN, clock)
and drives the sans-IO engines."""
