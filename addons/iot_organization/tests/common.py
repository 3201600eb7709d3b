import csv
import io

from odoo.addons.iot_invoice_grouping.tests.common import IotGroupingCommon


class UndoState(Exception):
    """Raised to roll a savepoint back: the state billed inside it is undone."""


class IotOrganizationCommon(IotGroupingCommon):
    """A holding and two subsidiaries (companies whose parent is the holding), each with
    contracts of the grouping test plan (9.99 every 2 months... billed monthly, 21% tax)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Partner = cls.env["res.partner"]
        cls.holding = Partner.create({"name": "Holding Group", "is_company": True})
        cls.other_holding = Partner.create({"name": "Other Holding", "is_company": True})
        cls.sub_north = Partner.create({"name": "North Subsidiary", "is_company": True, "parent_id": cls.holding.id})
        cls.sub_south = Partner.create({"name": "South Subsidiary", "is_company": True, "parent_id": cls.holding.id})

    @classmethod
    def _sub_contract(cls, partner, reference, policy, identifiers, date_start="2022-04-01", bill_to="self"):
        contract = cls.env["iot.contract"].create({
            "name": reference, "reference": reference, "partner_id": partner.id,
            "invoice_grouping": policy, "iot_bill_to": bill_to,
        })
        contract.action_start()
        cls._activate(reference, identifiers, date_start)
        return contract

    def _detail_csv(self, invoice):
        _filename, _mimetype, content = invoice._iot_detail_file("csv")
        return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
