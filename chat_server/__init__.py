"""distchat server: a single-threaded IRC server on `selectors`."""

VERSION = "distchat-0.1"  # what VERSION and the welcome burst report
