"""The policy model (the guide's structure), loading, SPD matching and audit."""
