/** The line the admin types into, with its label and a block cursor when it has focus. */
import { Box, Text } from "ink";

export interface InputLineProps {
  label: string;
  value: string;
  active: boolean;
  placeholder?: string;
}

export function InputLine({ label, value, active, placeholder }: InputLineProps) {
  return (
    <Box>
      <Text color={active ? "cyan" : "gray"}>{label} </Text>
      {value === "" && placeholder ? (
        <Text color="gray">
          {active ? "█" : ""}
          {placeholder}
        </Text>
      ) : (
        <Text wrap="truncate-start">
          {value}
          {active ? "█" : ""}
        </Text>
      )}
    </Box>
  );
}
