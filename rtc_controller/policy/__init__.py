"""rtc_controller.policy."""
