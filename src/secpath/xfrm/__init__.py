"""Linux XFRM (the kernel's IPsec data plane) over netlink: the model, a
sans-IO codec and a client.  Used only by the kernel data plane."""
