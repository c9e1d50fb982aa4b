"""chat-bot: an AI member of distchat rooms, speaking IRC like any other client."""
