"""distchat server: a single-threaded IRC server on `selectors`."""
