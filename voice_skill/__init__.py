"""The Alexa skill (ask-sdk-core) mounted at POST /alexa."""
