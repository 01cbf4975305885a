"""One module per `inferload` subcommand; each exposes `register(subparsers)`."""
