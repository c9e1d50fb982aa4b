"""Scripts that run distchat's chat-server and ngircd through the same chat-perf scenarios."""
