{
    "name": "IoT Invoice Threshold",
    "summary": "Hold small IoT periods until an invoicing level is reached (the transaction account)",
    "version": "18.0.1.0.0",
    "category": "Services/IoT",
    "website": "https://github.com/iot-billing/iot-billing",
    "author": "IoT Billing contributors",
    "license": "AGPL-3",
    "depends": ["iot_contract"],
    "data": [
        "views/iot_billing_run_views.xml",
        "views/iot_contract_views.xml",
        "views/iot_invoicing_schedule_views.xml",
        "views/product_template_views.xml",
        "views/res_company_views.xml",
    ],
    "demo": ["demo/iot_invoice_threshold_demo.xml"],
    "installable": True,
}
