{
    "name": "IoT Prepaid Credit",
    "summary": "Prepaid credit wallets for IoT contracts: a ledger rated as readings arrive, top-ups, "
    "low-balance notices and blocking at zero",
    "version": "18.0.1.0.0",
    "category": "Services/IoT",
    "website": "https://github.com/iot-billing/iot-billing",
    "author": "IoT Billing contributors",
    "license": "AGPL-3",
    "depends": ["iot_usage"],
    "data": [
        "security/ir.model.access.csv",
        "security/iot_prepaid_security.xml",
        "data/iot_wallet_reservation_cron.xml",
        "views/iot_wallet_entry_views.xml",
        "views/iot_wallet_grant_views.xml",
        "views/iot_wallet_views.xml",
        "views/iot_wallet_reservation_views.xml",
        "views/res_company_views.xml",
        "views/iot_prepaid_menus.xml",
    ],
    "installable": True,
}
