printf 'H %s\n' "$(uname -n)"
if ! command -v vcgencmd >/dev/null 2>&1; then echo '!vcgencmd is not installed'; exit 0; fi
vcgencmd pmic_read_adc 2>&1
exit 0
