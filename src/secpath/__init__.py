"""secpath — IPsec for Python: plan, negotiate, protect and monitor secure
communication paths between servers."""

from secpath.errors import LocalError, ParseError, RemoteError, SecpathError
from secpath.secret import Secret

__version__ = "0.1.0"

__all__ = ["LocalError", "ParseError", "RemoteError", "SecpathError", "Secret", "__version__"]
