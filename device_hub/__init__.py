"""CoAP hub for buttons and appliances (aiocoap), found by mDNS."""
