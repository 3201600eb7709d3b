import base64
import csv
import io

from odoo import fields, models
from odoo.addons.iot_device.tools import MAX_API_BATCH
from odoo.exceptions import UserError

REQUIRED_COLUMNS = ("identifier", "metric", "quantity", "timestamp", "message_id")


class IotUsageImportWizard(models.TransientModel):
    _name = "iot.usage.import.wizard"
    _description = "Import IoT Usage Readings from CSV"

    csv_file = fields.Binary(string="CSV file", required=True)
    filename = fields.Char()
    delimiter = fields.Selection([(",", "Comma"), (";", "Semicolon"), ("\t", "Tab")], default=",", required=True)
    result = fields.Text(readonly=True)
    state = fields.Selection([("draft", "Draft"), ("done", "Done")], default="draft")

    def _read_rows(self):
        try:
            text = base64.b64decode(self.csv_file).decode("utf-8-sig")
        except (ValueError, UnicodeDecodeError) as error:
            raise UserError(self.env._("The file is not UTF-8 text: %s", error)) from None
        reader = csv.DictReader(io.StringIO(text), delimiter=self.delimiter)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise UserError(
                self.env._("Missing columns: %(missing)s. Expected a header with %(expected)s.",
                           missing=", ".join(missing), expected=", ".join(REQUIRED_COLUMNS))
            )
        # Line numbers as a spreadsheet shows them: the header is line 1.
        return [(reader.line_num, dict(row)) for row in reader]

    def action_import(self):
        self.ensure_one()
        rows = self._read_rows()
        Usage = self.env["iot.usage"]
        accepted = duplicates = 0
        errors = []
        for start in range(0, len(rows), MAX_API_BATCH):
            chunk = rows[start:start + MAX_API_BATCH]
            result = Usage.api_ingest([row for _line, row in chunk], source="import")
            accepted += result["accepted"]
            duplicates += result["duplicates"]
            errors += ["line %d: %s" % (chunk[item["index"]][0], item["reason"]) for item in result["rejected"]]
        summary = [
            self.env._("%(accepted)s readings imported, %(duplicates)s already known, %(rejected)s rejected.",
                       accepted=accepted, duplicates=duplicates, rejected=len(errors))
        ]
        if errors:
            summary.append(self.env._("Rejected lines are kept under Usage > Rejected readings:"))
            summary += errors[:200]
            if len(errors) > 200:
                summary.append("... %d more" % (len(errors) - 200))
        self.write({"result": "\n".join(summary), "state": "done"})
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }
