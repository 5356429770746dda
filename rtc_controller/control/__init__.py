"""rtc_controller.control."""
