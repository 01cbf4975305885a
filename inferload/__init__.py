"""inferload: load-testing harness for model servers.

This package holds the `inferload` CLI, the experiment schema and runner (the only code that
ties models/, serving/, loadtest/ and analysis/ together) and the generated gRPC stubs.
"""

__version__ = "0.1.0"
