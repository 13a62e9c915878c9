"""secpath.ike — IKEv2 (RFC 7296), sans-IO.

Codec (pure functions; decoders raise only :class:`secpath.errors.ParseError`):

- :mod:`secpath.ike.constants`: ``ExchangeType``, ``PayloadType``,
  ``NotifyType`` (all of RFC 7296 §3.10.1, named; ``notify_name``),
  ``TransformType``, ``ProtocolId``, ``IdType``, ``AuthMethod``,
  ``CertEncoding``, ``TsType``, ``HeaderFlag``.
- :mod:`secpath.ike.payloads`: frozen dataclasses ``SaPayload`` (``Proposal``,
  ``Transform``, ``TransformAttribute``), ``KePayload``, ``IdiPayload``,
  ``IdrPayload``, ``CertPayload``, ``CertReqPayload``, ``AuthPayload``,
  ``NoncePayload``, ``NotifyPayload``, ``DeletePayload``, ``VendorIdPayload``,
  ``TsiPayload``, ``TsrPayload`` (of ``secpath.ike.selectors.TrafficSelector``),
  ``UnknownPayload``; ``encode_payload_body`` / ``decode_payload_body``.
- :mod:`secpath.ike.message`: ``Header``, ``Message`` (``get``, ``all``,
  ``notify``, ``unknown_critical``, ``unsupported_critical_notify``),
  ``Fragment``; ``encode_message(message, sk=None, rng=None)``,
  ``decode_message(data, sk=None)``, ``decode_header(data)``.  The SK payload
  is sealed/opened by :class:`secpath.crypto.sk.SkCipher`; an ICV failure is
  :class:`secpath.crypto.sk.IntegrityError` (a ParseError to drop silently).
- :mod:`secpath.ike.fragment`: RFC 7383 ``encode_fragments`` and the bounded
  ``FragmentReassembler``.

Crypto for IKE lives in :mod:`secpath.crypto` (``prf``, ``prf_plus``,
``kdf.skeyseed``/``derive_ike_keys``/``rekey_skeyseed``/``child_keymat``,
``dh.generate_dh``, ``sk.SkCipher``).
"""
