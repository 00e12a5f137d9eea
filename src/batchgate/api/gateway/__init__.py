"""The inline gateway dialect: a batch of Chat Completions requests in one JSON body."""
