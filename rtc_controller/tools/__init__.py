"""rtc_controller.tools."""
