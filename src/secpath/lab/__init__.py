"""``secpath lab``: a whole planned deployment secured on one machine, with
no root — every host on its own loopback address, one site behind an
in-process NAT, every path negotiated and carrying verified traffic."""
