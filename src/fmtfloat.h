/* fmtfloat.h - float to text, byte for byte as printf("%.9g") writes it.
 *
 * `lode embed` prints every embedding value with nine significant digits,
 * enough for any float32 to read back exactly.  printf is correct but
 * slow for that volume (about 140 ns a value); fmtfloat_g9 writes the
 * same bytes in a fraction of the time, so the CLI's output did not change
 * when it moved over.
 *
 *   char buf[FMTFLOAT_G9_SIZE];
 *   int len = fmtfloat_g9(f, buf);      // buf holds len bytes and a NUL
 *
 * The result is what glibc's snprintf(buf, n, "%.9g", (double)f) writes
 * in the default round-to-nearest mode: the exact binary value rounded
 * to nine significant digits, ties to even; fixed notation for decimal
 * exponents -4..8, otherwise d.dddddddde+XX; trailing zeros and a bare
 * decimal point dropped; "-0" for negative zero; "nan", "-nan", "inf",
 * "-inf" for the rest.
 */
#ifndef LODE_FMTFLOAT_H
#define LODE_FMTFLOAT_H

/* Longest result plus its NUL: "-1.17549435e-38" and "-0.000123456789"
 * are 15 bytes. */
#define FMTFLOAT_G9_SIZE 16

/* Write f as printf("%.9g", (double)f) would into buf (at least
 * FMTFLOAT_G9_SIZE bytes), NUL-terminated; returns the length without the
 * NUL.  Cannot fail. */
int fmtfloat_g9(float f, char *buf);

#endif
