import { registry } from "@web/core/registry";

// Opened on a pending device that knows its contract and plan: the wizard is
// pre-filled, the user sets the start date and confirms.
registry.category("web_tour.tours").add("iot_contract_activation_tour", {
    steps: () => [
        {
            content: "Open the activation wizard",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_open_activate_wizard']",
            run: "click",
        },
        {
            content: "The contract is pre-filled",
            trigger: ".modal .o_field_widget[name='contract_id'] input:value(IOT Fleet Contract)",
        },
        {
            content: "Set the start date",
            trigger: ".modal .o_field_widget[name='date_start'] input",
            run: "edit 04/01/2022",
        },
        {
            content: "Confirm",
            trigger: ".modal footer button[name='action_activate']",
            run: "click",
        },
        {
            content: "The device is active",
            trigger: ".o_form_view:not(:has(.modal)) .o_statusbar_status button.o_arrow_button_current[data-value='active']",
        },
    ],
});
