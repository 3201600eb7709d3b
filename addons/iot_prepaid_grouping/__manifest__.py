{
    "name": "IoT Prepaid Credit in the Device Detail",
    "summary": "Bridge: the prepaid credit applied to a period is a row of the invoice's device detail",
    "version": "18.0.1.0.0",
    "category": "Services/IoT",
    "website": "https://github.com/iot-billing/iot-billing",
    "author": "IoT Billing contributors",
    "license": "AGPL-3",
    "depends": ["iot_prepaid", "iot_invoice_grouping"],
    "auto_install": True,
    "installable": True,
}
