{
    "name": "IoT Invoice Grouping",
    "summary": "Readable invoices for thousands of devices, with the per-device detail as CSV and XLSX",
    "version": "18.0.1.0.0",
    "category": "Services/IoT",
    "website": "https://github.com/iot-billing/iot-billing",
    "author": "IoT Billing contributors",
    "license": "AGPL-3",
    "depends": ["iot_contract", "iot_usage"],
    "external_dependencies": {"python": ["xlsxwriter"]},
    "data": [
        "views/iot_contract_views.xml",
        "views/account_move_views.xml",
        "views/res_company_views.xml",
        "report/report_invoice.xml",
    ],
    "installable": True,
}
