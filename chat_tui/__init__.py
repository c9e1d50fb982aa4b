"""chat-tui: the full-screen Textual client of distchat (IRC + IRCv3)."""
