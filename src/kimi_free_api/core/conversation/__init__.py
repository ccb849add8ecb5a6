"""The conversation around an answer: the prompt sent to Kimi, recognising a continued chat, stored Responses
transcripts, and deleting chats nobody will continue."""
