{
    "name": "IoT Bundles and Presets",
    "summary": "Plans made of service options; the fee is the sum of the options; devices receive "
    "the resolved settings as versioned presets and acknowledge them",
    "version": "18.0.1.0.0",
    "category": "Services/IoT",
    "website": "https://github.com/iot-billing/iot-billing",
    "author": "IoT Billing contributors",
    "license": "AGPL-3",
    # iot_invoice_grouping: the option lines follow the contract's grouping policy, and its
    # "one line per device" policy must keep one line per option (see models/iot_contract.py).
    "depends": ["iot_contract", "iot_invoice_grouping"],
    "data": [
        "security/iot_bundle_security.xml",
        "security/ir.model.access.csv",
        "views/iot_bundle_setting_views.xml",
        "views/product_template_views.xml",
        "views/iot_contract_item_views.xml",
        "views/iot_contract_item_preset_views.xml",
        "views/iot_invoicing_schedule_views.xml",
        "views/iot_bundle_menus.xml",
    ],
    "demo": ["demo/iot_bundle_demo.xml"],
    "installable": True,
}
