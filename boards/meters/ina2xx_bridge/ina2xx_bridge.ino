// crisp-edge INA219 / INA226 bridge: reads a TI current-shunt monitor over I2C and streams
// timestamped bus voltage and current over USB serial, for `crisp-edge bench --meter ina:PORT`.
//
// Output (115200 baud, one line per reading, parsed by crisp_edge/meters/ina_bridge.py):
//   # crisp-edge ina2xx bridge v1 chip=INA226 addr=0x40 shunt_ohm=0.1 period_ms=10 id=bench1
//   $<t_us>,<bus_mV>,<current_uA>*<HH>      HH = XOR of the characters between '$' and '*'
//   ! <error>                               (no sensor, I2C failure; retried every second)
// The header is printed at reset and whenever a '?' arrives.
//
// Wiring: sensor VCC → 5 V (or 3.3 V), GND → GND, SDA/SCL → the board's I2C pins (A4/A5 on an
// Uno/Nano), shunt in series with the supply's + lead: IN+ on the supply side, IN− on the load
// (Raspberry Pi / Jetson) side. Bus voltage is measured at IN−, i.e. what the board gets.
//
// Current is computed here from the shunt voltage and SHUNT_OHMS, so the chip's calibration
// register is not used; measure your shunt (breakout boards carry 0.1 Ω, often 1 %) or
// calibrate with `crisp-edge calibrate-meter`.

#include <Wire.h>

#define I2C_ADDRESS 0x40     // A0/A1 strapped low; 0x41, 0x44, 0x45 … otherwise
#define SHUNT_OHMS 0.1       // the shunt resistor on your breakout
#define PERIOD_MS 10         // one reading every 10 ms (100 readings/s)
#define BRIDGE_ID "bench1"   // names this bridge in calibration files

// Registers shared by both chips.
#define REG_CONFIG 0x00
#define REG_SHUNT 0x01
#define REG_BUS 0x02
// INA226 only: manufacturer id 0x5449 ("TI") and die id 0x226x tell the chips apart.
#define REG_MANUFACTURER 0xFE
#define REG_DIE 0xFF

enum Chip { CHIP_NONE, CHIP_INA219, CHIP_INA226 };
static Chip chip = CHIP_NONE;
static unsigned long next_reading_ms = 0;
static unsigned long next_retry_ms = 0;

static bool write_register(uint8_t reg, uint16_t value) {
  Wire.beginTransmission(I2C_ADDRESS);
  Wire.write(reg);
  Wire.write((uint8_t)(value >> 8));
  Wire.write((uint8_t)(value & 0xFF));
  return Wire.endTransmission() == 0;
}

static bool read_register(uint8_t reg, uint16_t *value) {
  Wire.beginTransmission(I2C_ADDRESS);
  Wire.write(reg);
  if (Wire.endTransmission(false) != 0) return false;
  if (Wire.requestFrom((uint8_t)I2C_ADDRESS, (uint8_t)2) != 2) return false;
  uint16_t high = Wire.read();
  *value = (high << 8) | (uint16_t)Wire.read();
  return true;
}

static Chip detect_and_configure() {
  uint16_t manufacturer = 0, die = 0, config = 0;
  if (!read_register(REG_CONFIG, &config)) return CHIP_NONE;  // nothing answers at the address
  if (read_register(REG_MANUFACTURER, &manufacturer) && read_register(REG_DIE, &die) &&
      manufacturer == 0x5449 && (die & 0xFFF0) == 0x2260) {
    // INA226: mode continuous shunt+bus (111), 1.1 ms conversions (100, 100), 4 averages (001)
    // → a fresh reading every ~8.8 ms, just faster than PERIOD_MS.
    return write_register(REG_CONFIG, 0x4327) ? CHIP_INA226 : CHIP_NONE;
  }
  // INA219: 32 V bus range, ±320 mV shunt range (PGA /8), 12-bit, continuous: the reset default.
  return write_register(REG_CONFIG, 0x399F) ? CHIP_INA219 : CHIP_NONE;
}

static void print_header() {
  Serial.print(F("# crisp-edge ina2xx bridge v1 chip="));
  Serial.print(chip == CHIP_INA226 ? F("INA226") : chip == CHIP_INA219 ? F("INA219") : F("none"));
  Serial.print(F(" addr=0x"));
  Serial.print(I2C_ADDRESS, HEX);
  Serial.print(F(" shunt_ohm="));
  Serial.print(SHUNT_OHMS, 4);
  Serial.print(F(" period_ms="));
  Serial.print(PERIOD_MS);
  Serial.print(F(" id="));
  Serial.println(F(BRIDGE_ID));
}

static void print_error(const __FlashStringHelper *message) {
  Serial.print(F("! "));
  Serial.println(message);
}

static bool read_sensor(long *bus_mv, long *current_ua) {
  uint16_t shunt_raw, bus_raw;
  if (!read_register(REG_SHUNT, &shunt_raw) || !read_register(REG_BUS, &bus_raw)) return false;
  double shunt_uv;
  if (chip == CHIP_INA226) {
    shunt_uv = (int16_t)shunt_raw * 2.5;       // LSB 2.5 µV, two's complement
    *bus_mv = lround(bus_raw * 1.25);          // LSB 1.25 mV
  } else {
    shunt_uv = (int16_t)shunt_raw * 10.0;      // LSB 10 µV
    *bus_mv = (long)(bus_raw >> 3) * 4;        // bits 15..3, LSB 4 mV
  }
  *current_ua = lround(shunt_uv / SHUNT_OHMS);
  return true;
}

static void print_reading(unsigned long t_us, long bus_mv, long current_ua) {
  char body[40];
  snprintf(body, sizeof body, "%lu,%ld,%ld", t_us, bus_mv, current_ua);
  uint8_t checksum = 0;
  for (const char *c = body; *c; ++c) checksum ^= (uint8_t)*c;
  char line[48];
  snprintf(line, sizeof line, "$%s*%02X", body, checksum);
  Serial.println(line);
}

void setup() {
  Serial.begin(115200);
  Wire.begin();
  Wire.setClock(400000);
  chip = detect_and_configure();
  print_header();
  if (chip == CHIP_NONE) print_error(F("no INA219/INA226 answers at I2C_ADDRESS; check wiring"));
}

void loop() {
  while (Serial.available() > 0) {
    if (Serial.read() == '?') print_header();
  }
  unsigned long now_ms = millis();
  if (chip == CHIP_NONE) {
    if ((long)(now_ms - next_retry_ms) >= 0) {
      next_retry_ms = now_ms + 1000;
      chip = detect_and_configure();
      if (chip == CHIP_NONE) print_error(F("no INA219/INA226 answers at I2C_ADDRESS; check wiring"));
      else print_header();
    }
    return;
  }
  if ((long)(now_ms - next_reading_ms) < 0) return;
  next_reading_ms += PERIOD_MS;
  if ((long)(now_ms - next_reading_ms) > PERIOD_MS) next_reading_ms = now_ms;  // fell behind
  unsigned long t_us = micros();
  long bus_mv, current_ua;
  if (read_sensor(&bus_mv, &current_ua)) {
    print_reading(t_us, bus_mv, current_ua);
  } else {
    print_error(F("I2C read failed"));
    chip = CHIP_NONE;
  }
}
