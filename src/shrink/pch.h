// Precompiled header: the heavy, stable third-party headers only.
#pragma once
#include <ATen/ATen.h>
#include <functional>
#include <optional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>
