#pragma once
#define CRTOOLS_VERSION "0.1.0"
