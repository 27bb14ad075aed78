#ifndef CQRENCODE_H
#define CQRENCODE_H

// libqrencode (Debian: libqrencode-dev), used by `statecast-host serve --qr`.
#include <qrencode.h>

#endif
