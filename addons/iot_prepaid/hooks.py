def post_init_hook(env):
    """Book the Prepaid Credit product as a customer advance in every company with a chart."""
    env["product.product"]._iot_prepaid_set_advance_accounts(env["res.company"].search([]))
