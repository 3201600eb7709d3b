{
    "name": "IoT Platform Sync: Presets",
    "summary": "Bridge: platforms told by webhook of each preset version and its acknowledgement",
    "version": "18.0.1.0.0",
    "category": "Services/IoT",
    "website": "https://github.com/iot-billing/iot-billing",
    "author": "IoT Billing contributors",
    "license": "AGPL-3",
    "depends": ["iot_platform_sync", "iot_bundle"],
    "data": ["views/iot_webhook_views.xml"],
    "auto_install": True,
    "installable": True,
}
