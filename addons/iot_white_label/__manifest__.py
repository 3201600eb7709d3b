{
    "name": "IoT White Label",
    "summary": "Brands per company: downlink topic prefix, invoice e-mail and sender, detail file header",
    "version": "18.0.1.0.0",
    "category": "Services/IoT",
    "website": "https://github.com/iot-billing/iot-billing",
    "author": "IoT Billing contributors",
    "license": "AGPL-3",
    "depends": ["iot_invoice_grouping"],
    "data": [
        "views/res_company_views.xml",
    ],
    "demo": ["demo/iot_white_label_demo.xml"],
    "installable": True,
}
