"""The policy agent: one IPsec host's protocol state, sans-IO.

Named after the guide's IPsec Policy Agent service.  It joins the SPD, the
IKEv2 engine and the ESP SAs: outbound packets are looked up in the SPD and
permitted, blocked, or protected (negotiating first, with the packet
queued); datagrams from the network go to IKE or ESP; clear inbound traffic
is checked against the policy.  The daemon (TUN + UDP sockets) and the lab
(loopback sockets + in-process NAT) both drive this one class.
"""

from secpath.agent.agent import PolicyAgent
from secpath.agent.types import AgentEvent, ChildInfo, Outgoing, RuleState

__all__ = ["AgentEvent", "ChildInfo", "Outgoing", "PolicyAgent", "RuleState"]
