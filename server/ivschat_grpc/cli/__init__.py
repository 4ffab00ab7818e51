"""The ivschat-grpc command, one module per subcommand."""
