"""Operations: what a lab needs to run hundreds of runs: notifications, a hang watchdog, a retry policy per failure
class, and faults injected on purpose to test them."""
