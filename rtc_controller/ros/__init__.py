"""rtc_controller.ros."""
