"""rtc_controller.policy.pi05."""
