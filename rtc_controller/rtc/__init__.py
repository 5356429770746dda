"""rtc_controller.rtc."""
