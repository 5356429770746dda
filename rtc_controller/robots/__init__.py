"""rtc_controller.robots."""
