require 42;
