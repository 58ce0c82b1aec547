"""The shared order domain: every channel (button, appliance, voice, web, API) calls in here."""
