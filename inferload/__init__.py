"""inferload: load-testing harness for model servers.

This package holds the `inferload` CLI, the experiment schema and runner (the only code that
ties models/, serving/, loadtest/ and analysis/ together). The generated gRPC stubs are a package of
their own, `inferload_protos`, so that loadtest/ never imports this one.
"""

__version__ = "0.1.0"
