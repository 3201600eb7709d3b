{
    "name": "IoT Privacy by Role",
    "summary": "Billing (counts only): devices counted and periods totalled per subscription, no device data",
    "version": "18.0.1.0.0",
    "category": "Services/IoT",
    "website": "https://github.com/iot-billing/iot-billing",
    "author": "IoT Billing contributors",
    "license": "AGPL-3",
    "depends": ["iot_contract"],
    "data": [
        "security/iot_privacy_security.xml",
        "security/ir.model.access.csv",
        "views/iot_subscription_count_report_views.xml",
    ],
    "installable": True,
}
