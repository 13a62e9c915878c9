"""Cryptographic building blocks: the transforms registry, and (later) DH,
PRFs and ciphers.  Everything here comes from ``cryptography`` (OpenSSL)."""
