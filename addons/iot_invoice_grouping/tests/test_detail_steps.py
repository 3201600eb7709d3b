import gzip
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.addons.iot_contract.tools import CommittedSteps
from odoo.addons.iot_invoice_grouping.tools import INVOICE_DETAIL
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged

from .common import IotGroupingCommon


@tagged("post_install", "-at_install")
class TestDetailSteps(IotGroupingCommon):
    """A detail larger than the inline limit is written by the cron in committed steps:
    here 25 devices (50 rows), at most 5 rows inline and 7 rows per step."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract = cls._fleet("GRP-STEPS", 25, "plan_period", "STP")
        cls.env["iot.usage"].api_ingest([
            {"identifier": "STP-%05d" % n, "metric": "kwh", "quantity": str(1000 + n * 37.5),
             "timestamp": "2022-04-11T00:00:00Z", "message_id": "stp-%d" % n}
            for n in range(25)
        ])
        cls.env.company.iot_attach_detail = True
        set_param = cls.env["ir.config_parameter"].sudo().set_param
        set_param("iot_invoice_grouping.detail_inline_rows", 5)
        set_param("iot_invoice_grouping.detail_step_rows", 7)
        cls.cron = cls.env.ref("iot_invoice_grouping.iot_invoice_detail_cron")

    def setUp(self):
        super().setUp()
        # A series of cron calls (what they have done, CronSeries) lives on the cursor, which
        # the tests share: each test's cron call starts a series of its own.
        self.addCleanup(lambda: vars(self.env.cr).pop("_iot_cron_series", None))

    def _invoice(self):
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", self.cron.id)])
        invoice = self._run("2022-04-30")
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.iot_detail_state, "pending")
        self.assertEqual(invoice.iot_detail_row_count, 50, "25 fixed fees + 25 usage amounts")
        self.assertFalse(invoice.iot_detail_attachment_id, "nothing written while posting")
        self.assertGreater(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", self.cron.id)]), triggers,
            "posting starts the cron",
        )
        return invoice

    def _parts(self, invoice):
        return self.env["iot.invoice.detail.part"].search([("move_id", "=", invoice.id)], order="first_row")

    def _assert_same_as_csv_file(self, invoice):
        attachment = invoice.iot_detail_attachment_id
        self.assertEqual(invoice.iot_detail_state, "done")
        self.assertEqual(attachment.name, "%s-detail.csv.gz" % invoice.name.replace("/", "-"))
        self.assertEqual(attachment.mimetype, "application/gzip")
        self.assertEqual((attachment.res_model, attachment.res_id), ("account.move", invoice.id))
        expected = invoice._iot_detail_file("csv")[2]
        self.assertTrue(expected.startswith(b"\xef\xbb\xbfDevice,"))
        self.assertEqual(gzip.decompress(attachment.raw), expected, "the whole detail, byte for byte")
        self.assertFalse(self._parts(invoice), "the parts are removed once the file is attached")

    def test_steps_write_the_same_file_as_csv_file(self):
        invoice = self._invoice()
        written = []
        while invoice.iot_detail_state == "pending":
            written.append(invoice._iot_detail_step())
            if invoice.iot_detail_state == "pending":
                self.assertEqual(invoice.iot_detail_rows_written, sum(written))
                self.assertEqual(self._parts(invoice).mapped("first_row"), list(range(0, sum(written), 7)))
        self.assertEqual(written, [7, 7, 7, 7, 7, 7, 7, 1], "the step that reaches the end attaches the file")
        self._assert_same_as_csv_file(invoice)
        self.assertIsNone(invoice._iot_detail_step(), "nothing left to write")

    def test_last_step_of_an_exact_multiple_only_attaches(self):
        self.env["ir.config_parameter"].sudo().set_param("iot_invoice_grouping.detail_step_rows", 10)
        invoice = self._invoice()
        written = [invoice._iot_detail_step() for _step in range(6)]
        self.assertEqual(written, [10, 10, 10, 10, 10, 0])
        self._assert_same_as_csv_file(invoice)

    def test_failed_step_leaves_the_parts_and_a_later_step_resumes(self):
        invoice = self._invoice()
        invoice._iot_detail_step()
        invoice._iot_detail_step()
        before = self._parts(invoice).read(["first_row", "row_count", "amount_total", "last_key"])

        def write_three_rows_then_fail(stream, rows):
            for _row in range(3):
                stream.write(",".join(map(str, next(rows))))
            raise RuntimeError("worker killed")

        with patch.object(INVOICE_DETAIL, "write_csv_rows", write_three_rows_then_fail):
            with self.assertRaises(RuntimeError), self.env.cr.savepoint():
                invoice._iot_detail_step()
        self.env.invalidate_all()
        self.assertEqual(self._parts(invoice).read(["first_row", "row_count", "amount_total", "last_key"]), before)
        # The last step fails once while attaching the file: its part is rolled back with it.
        with patch.object(type(invoice), "_iot_detail_attach_parts", side_effect=RuntimeError("worker killed")):
            while len(self._parts(invoice)) < 7:
                invoice._iot_detail_step()
            with self.assertRaises(RuntimeError), self.env.cr.savepoint():
                invoice._iot_detail_step()
        self.env.invalidate_all()
        self.assertEqual(len(self._parts(invoice)), 7)
        self.assertEqual(invoice.iot_detail_state, "pending")
        self.assertEqual(invoice._iot_detail_step(), 1)
        self._assert_same_as_csv_file(invoice)

    def test_cron_writes_every_pending_detail_and_reports_progress(self):
        invoice = self._invoice()
        _cron, progress = self.cron._add_progress()
        commits = []
        commit = CommittedSteps._commit

        def counted_commit(steps):
            commits.append(True)
            return commit(steps)

        # In a test the driver's commits only count: each step is a savepoint of the test's transaction.
        with patch.object(CommittedSteps, "_commit", counted_commit):
            self.env["account.move"].with_context(ir_cron_progress_id=progress.id)._cron_write_iot_details()
        self._assert_same_as_csv_file(invoice)
        self.assertEqual(len(commits), 1 + 8, "a commit before the first step and after each step")
        self.assertEqual((progress.done, progress.remaining), (8, 0))

    def test_cron_leaves_out_an_invoice_whose_step_fails(self):
        self._fleet("GRP-STEPS-B", 10, "plan_period", "STQ")  # no usage: 10 fixed fees, two steps
        invoices = self._run("2022-04-30")
        self.assertEqual(len(invoices), 2)
        self.assertEqual(set(invoices.mapped("iot_detail_state")), {"pending"})
        broken = invoices.filtered(lambda move: move.iot_detail_row_count == 50)
        other = invoices - broken
        step = type(broken)._iot_detail_step
        tried = []

        def failing_step(move):
            if move == broken:
                tried.append(move.id)
                raise RuntimeError("broken detail")
            return step(move)

        _cron, progress = self.cron._add_progress()
        with (
            patch.object(type(broken), "_iot_detail_step", failing_step),
            self.assertLogs("odoo.addons.iot_invoice_grouping.models.account_move", "ERROR") as logs,
        ):
            self.env["account.move"].with_context(ir_cron_progress_id=progress.id)._cron_write_iot_details()
        self.assertEqual(tried, [broken.id], "tried once, then left out for the rest of the call")
        self.assertIn("Invoice %d: its detail file could not be written" % broken.id, logs.output[0])
        self._assert_same_as_csv_file(other)
        self.assertEqual(broken.iot_detail_state, "pending")
        self.assertEqual(other.iot_detail_row_count, 10)
        self.assertEqual((progress.done, progress.remaining), (2, 8), "the other's two steps; 50 rows in steps of 7")

    def test_sending_is_refused_while_the_detail_is_written(self):
        invoice = self._invoice()
        invoice._iot_detail_step()
        with self.assertRaisesRegex(UserError, r"being written \(7 rows of 50\): try again in a minute"):
            invoice.action_send_and_print()
        with self.assertRaises(UserError):
            self.env["account.move.send"]._generate_and_send_invoices(invoice)
        self.env["account.move"]._iot_write_pending_details()
        self.assertEqual(invoice.action_send_and_print()["res_model"], "account.move.send.wizard")
        self.assertIn(
            invoice.iot_detail_attachment_id, self.env["account.move.send"]._get_invoice_extra_attachments(invoice)
        )

    def test_downloads_give_the_attached_file_and_create_none(self):
        invoice = self._invoice()
        self.assertEqual(
            invoice.action_iot_export_detail_csv()["url"], "/iot_invoice_grouping/detail/%d/csv" % invoice.id,
            "while it is written, the CSV is streamed",
        )
        self.env["account.move"]._iot_write_pending_details()
        attachments = self.env["ir.attachment"].search_count(
            [("res_model", "=", "account.move"), ("res_id", "=", invoice.id)]
        )
        for _click in range(2):
            self.assertEqual(
                invoice.action_iot_export_detail_csv()["url"],
                "/web/content/%d?download=true" % invoice.iot_detail_attachment_id.id,
            )
            self.assertEqual(
                invoice.action_iot_export_detail_xlsx()["url"], "/iot_invoice_grouping/detail/%d/xlsx" % invoice.id
            )
        self.assertEqual(
            self.env["ir.attachment"].search_count([("res_model", "=", "account.move"), ("res_id", "=", invoice.id)]),
            attachments,
        )

    def test_xlsx_refused_above_what_a_sheet_holds(self):
        invoice = self._invoice()
        self.env["ir.config_parameter"].sudo().set_param("iot_invoice_grouping.detail_xlsx_max_rows", 49)
        with self.assertRaisesRegex(UserError, "50 rows, more than an XLSX file of it can hold.*download the CSV"):
            invoice.action_iot_export_detail_xlsx()
        with self.assertRaises(UserError):
            invoice._iot_detail_file("xlsx")
        self.assertTrue(invoice._iot_detail_file("csv")[2])
        self.env["ir.config_parameter"].sudo().set_param("iot_invoice_grouping.detail_xlsx_max_rows", 2000000)
        self.assertEqual(invoice._iot_xlsx_max_rows(), 1048573, "no more than a sheet holds, whatever the parameter")

    def test_reset_to_draft_drops_the_detail_being_written(self):
        invoice = self._invoice()
        invoice._iot_detail_step()
        invoice.button_draft()
        self.assertFalse(invoice.iot_detail_state)
        self.assertFalse(self._parts(invoice))
        invoice.action_post()
        self.assertEqual(invoice.iot_detail_state, "pending")
        self.env["account.move"]._iot_write_pending_details()
        self._assert_same_as_csv_file(invoice)

    def test_small_detail_still_attached_as_xlsx_when_posted(self):
        self.env["ir.config_parameter"].sudo().set_param("iot_invoice_grouping.detail_inline_rows", 50)
        invoice = self._run("2022-04-30")
        self.assertEqual(invoice.iot_detail_state, "done")
        self.assertEqual(invoice.iot_detail_attachment_id.name, "%s-detail.xlsx" % invoice.name.replace("/", "-"))
        self.assertFalse(self._parts(invoice))


@tagged("post_install", "-at_install")
class TestDetailStepLock(TransactionCase):
    """Two real transactions on one pending detail: the second skips it while the first holds it.

    Other transactions only see committed data: the invoice is committed in its own cursor
    and removed again in the cleanup.
    """

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partner = env["res.partner"].create({"name": "Detail lock customer"})
            move = env["account.move"].create({"move_type": "out_invoice", "partner_id": partner.id})
            # Marked as posted with a pending detail in SQL: the lock is what is tested, not posting.
            cr.execute("UPDATE account_move SET state = 'posted', iot_detail_state = 'pending' WHERE id = %s",
                       [move.id])
            self.move_id, self.partner_id = move.id, partner.id
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM account_move WHERE id = %s", [self.move_id])
            cr.execute("DELETE FROM res_partner WHERE id = %s", [self.partner_id])

    def test_a_detail_is_written_by_one_transaction_at_a_time(self):
        with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
            first = api.Environment(cr1, SUPERUSER_ID, {})["account.move"].browse(self.move_id)
            second = api.Environment(cr2, SUPERUSER_ID, {})["account.move"].browse(self.move_id)
            self.assertTrue(first._iot_lock_pending_detail())
            self.assertIsNone(second._iot_detail_step(), "held by the first: skipped, not waited for")
            cr1.rollback()
            cr2.rollback()
            self.assertTrue(second._iot_lock_pending_detail(), "free again once the first has ended")
            cr2.rollback()
